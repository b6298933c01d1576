package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/domination/domination/internal/query"
)

// RollupReport is the outcome of reconciling the answers `domination
// query` gives (seals for the sealed minutes, FINAL for the rest) with the
// stores read with FINAL alone.
type RollupReport struct {
	// Buckets counts the (minute, type) counts of shadow and the windows of
	// active_visitors compared.
	Buckets int `json:"buckets"`
	// Mismatched counts those that differ or exist on one side only.
	Mismatched int `json:"mismatched"`
	// MismatchedSample names some of them.
	MismatchedSample []string `json:"mismatched_sample,omitempty"`
}

// OK reports whether the query answers equal the stores'.
func (r RollupReport) OK() bool { return r.Mismatched == 0 }

// String is one line: "rollup buckets=N mismatched=N [sample=a,b]".
func (r RollupReport) String() string {
	s := fmt.Sprintf("rollup buckets=%d mismatched=%d", r.Buckets, r.Mismatched)
	if len(r.MismatchedSample) > 0 {
		s += " mismatched_sample=" + strings.Join(r.MismatchedSample, ",")
	}
	return s
}

// ReconcileRollup compares two answers keyed alike (a minute and type, or
// a window of a key) with their counts: got from the query, want from the
// store with FINAL.
func ReconcileRollup(got, want map[string]uint64) RollupReport {
	r := RollupReport{}
	for k, w := range want {
		r.Buckets++
		if g, ok := got[k]; !ok || g != w {
			r.Mismatched++
			r.MismatchedSample = sample(r.MismatchedSample, fmt.Sprintf("%s:%d!=%d", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			r.Buckets++
			r.Mismatched++
			r.MismatchedSample = sample(r.MismatchedSample, fmt.Sprintf("%s:%d!=0", k, g))
		}
	}
	return r
}

// Rollup reconciles `query shadow --by minute` and `query active-visitors`
// over [since, until) (zero: unbounded) with shadow and active_visitors
// read with FINAL over the same range.
func (s *Source) Rollup(ctx context.Context, since, until time.Time) (RollupReport, error) {
	got, want := map[string]uint64{}, map[string]uint64{}
	res, err := query.Shadow(ctx, s.Conn, query.ShadowQuery{Since: since, Until: until, By: "minute"})
	if err != nil {
		return RollupReport{}, err
	}
	for _, row := range res.Rows {
		got[fmt.Sprintf("shadow@%s/%s", row[0].(time.Time).Format(time.RFC3339), row[1])] = row[2].(uint64)
	}
	from, to := bounds(since, until)
	rows, err := s.Conn.Query(ctx, "SELECT toStartOfMinute(emit_timestamp) AS minute, toString(type), count() FROM shadow FINAL"+
		" WHERE emit_timestamp >= ? AND emit_timestamp < ? GROUP BY minute, type", from, to)
	if err != nil {
		return RollupReport{}, fmt.Errorf("read shadow: %w", err)
	}
	for rows.Next() {
		var (
			m   time.Time
			typ string
			n   uint64
		)
		if err := rows.Scan(&m, &typ, &n); err != nil {
			rows.Close()
			return RollupReport{}, fmt.Errorf("read shadow row: %w", err)
		}
		want[fmt.Sprintf("shadow@%s/%s", m.UTC().Format(time.RFC3339), typ)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return RollupReport{}, fmt.Errorf("read shadow rows: %w", err)
	}

	var twiceListed []string
	res, err = query.ActiveVisitors(ctx, s.Conn, query.ActiveVisitorsQuery{Since: since, Until: until})
	if err != nil {
		return RollupReport{}, err
	}
	window := func(account int64, store *string, start time.Time) string {
		st := "null"
		if store != nil {
			st = fmt.Sprintf("%q", *store)
		}
		return fmt.Sprintf("active_visitors@%s/%d/%s", start.UTC().Format(time.RFC3339), account, st)
	}
	for _, row := range res.Rows {
		var store *string
		if v, ok := row[1].(string); ok {
			store = &v
		}
		k := window(row[0].(int64), store, row[2].(time.Time))
		if _, twice := got[k]; twice {
			twiceListed = append(twiceListed, k)
		}
		got[k] = row[4].(uint64)
	}
	rows, err = s.Conn.Query(ctx, "SELECT account_id, store_id, window_start, `count` FROM active_visitors FINAL"+
		" WHERE window_start >= ? AND window_start < ?", from, to)
	if err != nil {
		return RollupReport{}, fmt.Errorf("read active_visitors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			account int64
			store   *string
			start   time.Time
			n       uint64
		)
		if err := rows.Scan(&account, &store, &start, &n); err != nil {
			return RollupReport{}, fmt.Errorf("read active_visitors row: %w", err)
		}
		want[window(account, store, start)] = n
	}
	if err := rows.Err(); err != nil {
		return RollupReport{}, fmt.Errorf("read active_visitors rows: %w", err)
	}
	r := ReconcileRollup(got, want)
	for _, k := range twiceListed {
		r.Mismatched++
		r.MismatchedSample = sample(r.MismatchedSample, k+":listed twice")
	}
	return r, nil
}

// bounds turns a range with zero ends into one within DateTime's, its
// ends rounded up to whole seconds as the queries round them.
func bounds(since, until time.Time) (time.Time, time.Time) {
	ceil := func(t, zero time.Time) time.Time {
		if t.IsZero() {
			return zero
		}
		if r := t.UTC().Truncate(time.Second); !r.Equal(t) {
			return r.Add(time.Second)
		}
		return t.UTC()
	}
	return ceil(since, query.MinTime), ceil(until, query.MaxTime)
}
