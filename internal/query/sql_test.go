package query

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
)

var (
	t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	t1 = time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
)

func TestShadowValidate(t *testing.T) {
	tests := []struct {
		name   string
		q      ShadowQuery
		errHas string // "" for valid
	}{
		{"zero value", ShadowQuery{}, ""},
		{"every type and grouping", ShadowQuery{Types: ShadowTypes, By: "day", Since: t0, Until: t1, Limit: 5}, ""},
		{"unknown type", ShadowQuery{Types: []string{"Sha", "sha"}}, `unknown shadow type "sha": want one of Incompatible, Sha, Dow, ShaDow`},
		{"injected type", ShadowQuery{Types: []string{"x' OR 1=1 --"}}, `unknown shadow type "x' OR 1=1 --"`},
		{"unknown by", ShadowQuery{By: "week"}, `unknown grouping "week": want one of type, minute, hour, day`},
		{"injected by", ShadowQuery{By: "type; DROP TABLE shadow"}, "unknown grouping"},
		{"until before since", ShadowQuery{Since: t1, Until: t0}, "until 2026-11-23T10:00:00Z must be after since 2026-11-23T11:00:00Z"},
		{"until equals since", ShadowQuery{Since: t0, Until: t0}, "must be after since"},
		{"negative limit", ShadowQuery{Limit: -1}, "limit -1 is negative"},
		{"since before 1970", ShadowQuery{Since: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)}, "since 1969-12-31T23:59:59Z is outside the range"},
		{"until after 2105", ShadowQuery{Until: time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)}, "until 2106-01-01T00:00:00Z is outside the range"},
		{"only since", ShadowQuery{Since: t1}, ""},
		{"only until", ShadowQuery{Until: t0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate", tt.q.Validate(), tt.errHas)
		})
	}
}

func TestActiveVisitorsValidate(t *testing.T) {
	tests := []struct {
		name   string
		q      ActiveVisitorsQuery
		errHas string
	}{
		{"zero value", ActiveVisitorsQuery{}, ""},
		{"any store id is a value", ActiveVisitorsQuery{StoreIDs: []string{"x' OR 1=1 --"}, NullStore: true}, ""},
		{"until before since", ActiveVisitorsQuery{Since: t1, Until: t0}, "must be after since"},
		{"negative limit", ActiveVisitorsQuery{Limit: -3}, "limit -3 is negative"},
		{"since before 1970", ActiveVisitorsQuery{Since: time.Unix(-1, 0)}, "outside the range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate", tt.q.Validate(), tt.errHas)
		})
	}
}

// The queries validate before touching the connection: with a nil
// connection, an invalid query must return its validation error, not panic.
func TestQueriesValidateBeforeQuerying(t *testing.T) {
	if _, err := Shadow(context.Background(), nil, ShadowQuery{Types: []string{"x' OR 1=1 --"}}); err == nil || !strings.Contains(err.Error(), "unknown shadow type") {
		t.Errorf("Shadow error = %v, want the validation error", err)
	}
	if _, err := ActiveVisitors(context.Background(), nil, ActiveVisitorsQuery{Limit: -1}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("ActiveVisitors error = %v, want the validation error", err)
	}
}

func TestShadowSQLReadsSealsForCleanMinutesAndTheStoreForTheRest(t *testing.T) {
	half := t0.Add(90*time.Second + 500*time.Millisecond)
	clean := []time.Time{t0.Add(2 * time.Minute), t0.Add(3 * time.Minute)}
	sql, args := shadowSQL(ShadowQuery{Since: half, Until: t0.Add(5 * time.Minute), Types: []string{"Sha"}, By: "hour", Limit: 3}, clean)
	want := "SELECT toStartOfHour(t) AS bucket, type, sum(n) AS total FROM (" +
		"SELECT minute AS t, type, events AS n FROM shadow_minutes FINAL WHERE minute >= ? AND minute < ? AND NOT ((minute >= ? AND minute < ?) OR (minute >= ? AND minute < ?)) AND type IN (?)" +
		" UNION ALL SELECT toStartOfMinute(emit_timestamp) AS t, type, count() AS n FROM shadow FINAL WHERE ((emit_timestamp >= ? AND emit_timestamp < ?) OR (emit_timestamp >= ? AND emit_timestamp < ?)) AND type IN (?) GROUP BY t, type" +
		") GROUP BY bucket, type HAVING total > 0 ORDER BY bucket, type LIMIT ?"
	if sql != want {
		t.Errorf("SQL\n got: %s\nwant: %s", sql, want)
	}
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	half = half.Add(500 * time.Millisecond) // rounded up to the second
	wantArgs := []any{m(2), m(5), half, m(2), m(4), m(5), "Sha", half, m(2), m(4), m(5), "Sha", 3}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("args\n got: %v\nwant: %v", args, wantArgs)
	}
}

func TestShadowSQLHasOnePlaceholderPerValue(t *testing.T) {
	for _, q := range []ShadowQuery{
		{},
		{By: "day"},
		{Since: t0, Until: t1, Types: []string{"Sha", "ShaDow"}, By: "type", Limit: 2},
		{Since: t0.Add(500 * time.Millisecond), By: "minute"},
		{Since: t0.Add(time.Second), Until: t0.Add(2 * time.Second)}, // within one minute: the store only
	} {
		for _, clean := range [][]time.Time{nil, {t0}, {t0, t0.Add(30 * time.Minute)}} {
			sql, args := shadowSQL(q, clean)
			if n := strings.Count(sql, "?"); n != len(args) {
				t.Errorf("%+v, clean %v: %d placeholders for %d args: %s", q, clean, n, len(args), sql)
			}
			if !strings.Contains(sql, "FROM shadow FINAL") && len(clean) == 0 {
				t.Errorf("%+v without seals does not read the store: %s", q, sql)
			}
		}
	}
}

func TestActiveVisitorsSQLBindsEveryValue(t *testing.T) {
	const evil = "x' OR 1=1 --"
	for _, q := range []ActiveVisitorsQuery{
		{},
		{Since: t0, Until: t1, AccountIDs: []int64{1, 2}, StoreIDs: []string{"s1", evil}, NullStore: true, Limit: 10},
		{StoreIDs: []string{evil}},
		{NullStore: true},
		{StoreIDs: []string{"null"}},
	} {
		for _, clean := range [][]time.Time{nil, {t0}} {
			sql, args := activeVisitorsSQL(q, clean)
			if n := strings.Count(sql, "?"); n != len(args) {
				t.Errorf("%+v: %d placeholders for %d args: %s", q, n, len(args), sql)
			}
			for _, s := range q.StoreIDs {
				if strings.Contains(sql, s) {
					t.Errorf("SQL text contains the store id %q: %s", s, sql)
				}
			}
			if !strings.HasSuffix(strings.TrimSuffix(sql, " LIMIT ?"), " ORDER BY window_start, account_id, store_id") {
				t.Errorf("not ordered as documented: %s", sql)
			}
		}
	}
}

func TestPlanSplitsTheRangeBetweenSealsAndStore(t *testing.T) {
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	tests := []struct {
		name         string
		since, until time.Time
		clean        []time.Time
		lo, hi       time.Time
		store        []span
	}{
		{"nothing sealed", m(0), m(10), nil, m(0), m(10), []span{{m(0), m(10)}}},
		{"all sealed", m(0), m(3), []time.Time{m(0), m(1), m(2)}, m(0), m(3), nil},
		{"partial minutes at both ends", m(0).Add(time.Second), m(3).Add(time.Second), []time.Time{m(1), m(2)}, m(1), m(3),
			[]span{{m(0).Add(time.Second), m(1)}, {m(3), m(3).Add(time.Second)}}},
		{"a dirty minute between clean ones", m(0), m(3), []time.Time{m(0), m(2)}, m(0), m(3), []span{{m(1), m(2)}}},
		{"unbounded: the tail after the last seal", m(0), time.Time{}, []time.Time{m(0)}, m(0), MaxTime.Truncate(time.Minute),
			[]span{{m(1), MaxTime.Truncate(time.Minute)}, {MaxTime.Truncate(time.Minute), time.Time{}}}},
		{"within one minute", m(0).Add(time.Second), m(0).Add(2 * time.Second), nil, m(1), m(1), []span{{m(0).Add(time.Second), m(0).Add(2 * time.Second)}}},
		{"clean minutes outside the range are ignored", m(1), m(2), []time.Time{m(0), m(1), m(5)}, m(1), m(2), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, store := plan(tt.since, tt.until, tt.clean)
			if !lo.Equal(tt.lo) || !hi.Equal(tt.hi) || !reflect.DeepEqual(store, tt.store) {
				t.Errorf("plan = %v, %v, %v; want %v, %v, %v", lo, hi, store, tt.lo, tt.hi, tt.store)
			}
		})
	}
}

func TestPlanKeepsFewStoreSpansAndCoversEachMinuteOnce(t *testing.T) {
	// Every other minute clean: 100 gaps, merged down to maxStoreSpans.
	var clean []time.Time
	for i := 0; i < 200; i += 2 {
		clean = append(clean, t0.Add(time.Duration(i)*time.Minute))
	}
	lo, hi, store := plan(t0, t0.Add(200*time.Minute), clean)
	if len(store) > maxStoreSpans {
		t.Fatalf("%d store spans, want at most %d", len(store), maxStoreSpans)
	}
	for m := lo; m.Before(hi); m = m.Add(time.Minute) {
		inStore := false
		for _, s := range store {
			if !m.Before(s.from) && m.Before(s.to) {
				inStore = true
			}
		}
		isClean := false
		for _, c := range clean {
			isClean = isClean || c.Equal(m)
		}
		if !inStore && !isClean {
			t.Fatalf("minute %s is neither clean nor read from the store", m)
		}
	}
}
