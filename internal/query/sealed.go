package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// maxStoreSpans bounds the spans one query reads from a store with FINAL:
// beyond it, the closest spans are merged (the sealed minutes between them
// are then read from the store too), so the statement stays short.
const maxStoreSpans = 32

// span is a half-open time range [from, to); a zero end is unbounded.
type span struct{ from, to time.Time }

// plan splits [since, until) between the seals and the store: the whole
// minutes of [lo, hi) outside the store spans are answered by their seals,
// everything else (the partial minutes at both ends, the minutes without a
// clean seal, and the sealed minutes merged in to keep the spans few) by
// the store with FINAL. clean lists the minutes of [lo, hi) whose seal is
// clean, sorted. Every instant of [since, until) falls in exactly one of
// the two: the statements read the seals with the negation of the store
// spans' condition.
func plan(since, until time.Time, clean []time.Time) (lo, hi time.Time, store []span) {
	lo, hi = sealedRange(since, until)
	if !lo.Before(hi) {
		return lo, lo, []span{{since, until}}
	}
	if !since.IsZero() && since.Before(lo) {
		store = append(store, span{since, lo})
	}
	next := lo
	for _, m := range clean {
		if m.Before(next) || !m.Before(hi) {
			continue
		}
		if m.After(next) {
			store = append(store, span{next, m})
		}
		next = m.Add(time.Minute)
	}
	if next.Before(hi) {
		store = append(store, span{next, hi})
	}
	if until.IsZero() || hi.Before(until) {
		store = append(store, span{hi, until})
	}
	return lo, hi, mergeSpans(store, maxStoreSpans)
}

// sealedRange is the range of whole minutes inside [since, until), an
// unbounded end taken as the end of ClickHouse's range.
func sealedRange(since, until time.Time) (lo, hi time.Time) {
	lo, hi = MinTime, MaxTime.Truncate(time.Minute)
	if !since.IsZero() {
		lo = ceilSecond(since)
		if t := lo.Truncate(time.Minute); !t.Equal(lo) {
			lo = t.Add(time.Minute)
		}
	}
	if !until.IsZero() {
		hi = ceilSecond(until).Truncate(time.Minute)
	}
	return lo, hi
}

// mergeSpans merges sorted, disjoint spans until at most max remain,
// joining first the neighbours with the shortest gap between them.
func mergeSpans(spans []span, max int) []span {
	if len(spans) <= max {
		return spans
	}
	gaps := make([]int, len(spans)-1) // gap i lies between spans i and i+1
	for i := range gaps {
		gaps[i] = i
	}
	gapLen := func(i int) time.Duration { return spans[i+1].from.Sub(spans[i].to) }
	slices.SortStableFunc(gaps, func(a, b int) int { return int(gapLen(b) - gapLen(a)) })
	keep := make([]bool, len(gaps))
	for _, i := range gaps[:max-1] {
		keep[i] = true // the longest gaps stay gaps
	}
	out := []span{spans[0]}
	for i := 1; i < len(spans); i++ {
		if keep[i-1] {
			out = append(out, spans[i])
		} else {
			out[len(out)-1].to = spans[i].to
		}
	}
	return out
}

// spansCond is the condition "col lies in one of spans", with its
// arguments; negated, it selects the sealed minutes.
func spansCond(col string, spans []span) (string, []any) {
	var (
		parts []string
		args  []any
	)
	for _, s := range spans {
		var w where
		w.timeRange(col, s.from, s.to)
		if len(w.conds) == 0 {
			parts = append(parts, "1")
		} else {
			parts = append(parts, "("+strings.Join(w.conds, " AND ")+")")
		}
		args = append(args, w.args...)
	}
	return "(" + strings.Join(parts, " OR ") + ")", args
}

// sealedCond selects the minutes of [lo, hi) that lie in no store span.
func sealedCond(col string, lo, hi time.Time, store []span) (string, []any) {
	cond := col + " >= ? AND " + col + " < ?"
	args := []any{lo, hi}
	if len(store) > 0 {
		c, a := spansCond(col, store)
		cond += " AND NOT " + c
		args = append(args, a...)
	}
	return cond, args
}

// sealedStore names a store's tables for queryStore: the store itself, the
// arrivals and seals beside it, and the condition that picks the one seal
// row of a minute.
type sealedStore struct{ table, arrivals, seals, one string }

var (
	shadowStore   = sealedStore{"shadow", "shadow_arrivals", "shadow_minutes", " AND type = 'Incompatible'"}
	visitorsStore = sealedStore{"active_visitors", "active_visitors_arrivals", "active_visitors_seals", ""}
)

// queryStore validates q, reads the clean minutes of [since, until) from
// s's seals and sends the statement build makes of them. It sends nothing
// if q is invalid, and returns Validate's error as it is.
func queryStore(ctx context.Context, conn driver.Conn, q interface{ Validate() error }, since, until time.Time, s sealedStore, build func(clean []time.Time) (string, []any)) (driver.Rows, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	lo, hi := sealedRange(since, until)
	clean, err := cleanMinutes(ctx, conn, s.arrivals, s.seals, s.one, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", s.table, err)
	}
	sql, args := build(clean)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", s.table, err)
	}
	return rows, nil
}

// readResult reads rows, which it closes, into a Result with columns: one
// row for each, as scan makes it of the current row. table names what is
// read, in errors. An empty result has Rows [], not nil, so that it is []
// in JSON, not null.
func readResult(rows driver.Rows, table string, columns []string, scan func(driver.Rows) ([]any, error)) (*Result, error) {
	defer rows.Close()
	res := &Result{Columns: columns, Rows: [][]any{}}
	for rows.Next() {
		row, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read %s row: %w", table, err)
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s rows: %w", table, err)
	}
	return res, nil
}

// cleanMinutes returns the minutes of [lo, hi) whose seal in seals still
// names the arrival count the minute has in arrivals, sorted. One is the
// condition on seals that leaves one row per seal (shadow_minutes holds
// one per type, all with the same count). Reading the seals with FINAL is
// reading a few rows per minute, not the store's history: measured on
// 18.16 it is faster over them than a GROUP BY with argMax.
func cleanMinutes(ctx context.Context, conn driver.Conn, arrivals, seals, one string, lo, hi time.Time) ([]time.Time, error) {
	if !lo.Before(hi) {
		return nil, nil
	}
	sql := "SELECT minute FROM (SELECT minute, arrived AS sealed_arrived FROM " + seals +
		" FINAL WHERE minute >= ? AND minute < ?" + one + ") AS seals ANY LEFT JOIN (SELECT minute, sum(arrived) AS arrived FROM " + arrivals +
		" WHERE minute >= ? AND minute < ? GROUP BY minute) AS arrivals USING minute WHERE sealed_arrived = arrived ORDER BY minute"
	rows, err := conn.Query(ctx, sql, lo, hi, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read seals of %s: %w", seals, err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var m time.Time
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("read seals of %s: %w", seals, err)
		}
		out = append(out, m.UTC())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read seals of %s: %w", seals, err)
	}
	return out, nil
}
