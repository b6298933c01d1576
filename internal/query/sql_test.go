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

func TestShadowSQL(t *testing.T) {
	half := t0.Add(500 * time.Millisecond)
	tests := []struct {
		name     string
		q        ShadowQuery
		wantSQL  string
		wantArgs []any
	}{
		{
			name:    "by type, everything",
			q:       ShadowQuery{},
			wantSQL: "SELECT type, count() AS n FROM shadow FINAL GROUP BY type ORDER BY n DESC, type",
		},
		{
			name:     "by type, every filter",
			q:        ShadowQuery{Since: t0, Until: t1, Types: []string{"Sha", "ShaDow"}, By: "type", Limit: 2},
			wantSQL:  "SELECT type, count() AS n FROM shadow FINAL WHERE emit_timestamp >= ? AND emit_timestamp < ? AND type IN (?, ?) GROUP BY type ORDER BY n DESC, type LIMIT ?",
			wantArgs: []any{t0, t1, "Sha", "ShaDow", 2},
		},
		{
			name:     "by minute since, fraction rounded up",
			q:        ShadowQuery{Since: half, By: "minute"},
			wantSQL:  "SELECT toStartOfMinute(emit_timestamp) AS bucket, type, count() AS n FROM shadow FINAL WHERE emit_timestamp >= ? GROUP BY bucket, type ORDER BY bucket, type",
			wantArgs: []any{t0.Add(time.Second)},
		},
		{
			name:     "by hour until, one type",
			q:        ShadowQuery{Until: t1, By: "hour", Types: []string{"Dow"}},
			wantSQL:  "SELECT toStartOfHour(emit_timestamp) AS bucket, type, count() AS n FROM shadow FINAL WHERE emit_timestamp < ? AND type IN (?) GROUP BY bucket, type ORDER BY bucket, type",
			wantArgs: []any{t1, "Dow"},
		},
		{
			name:     "by day with limit",
			q:        ShadowQuery{By: "day", Limit: 7},
			wantSQL:  "SELECT toStartOfDay(emit_timestamp) AS bucket, type, count() AS n FROM shadow FINAL GROUP BY bucket, type ORDER BY bucket, type LIMIT ?",
			wantArgs: []any{7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.q.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			sql, args := shadowSQL(tt.q)
			if sql != tt.wantSQL {
				t.Errorf("SQL\n got: %s\nwant: %s", sql, tt.wantSQL)
			}
			if !reflect.DeepEqual(args, tt.wantArgs) && (len(args) != 0 || len(tt.wantArgs) != 0) {
				t.Errorf("args = %#v, want %#v", args, tt.wantArgs)
			}
			if n := strings.Count(sql, "?"); n != len(args) {
				t.Errorf("%d placeholders for %d args", n, len(args))
			}
		})
	}
}

func TestActiveVisitorsSQL(t *testing.T) {
	const evil = "x' OR 1=1 --"
	const base = "SELECT account_id, store_id, window_start, window_end, count FROM active_visitors FINAL"
	const order = " ORDER BY window_start, account_id, store_id"
	tests := []struct {
		name     string
		q        ActiveVisitorsQuery
		wantSQL  string
		wantArgs []any
	}{
		{"everything", ActiveVisitorsQuery{}, base + order, nil},
		{
			"every filter",
			ActiveVisitorsQuery{Since: t0, Until: t1, AccountIDs: []int64{1, 2}, StoreIDs: []string{"s1", evil}, NullStore: true, Limit: 10},
			base + " WHERE window_start >= ? AND window_start < ? AND account_id IN (?, ?) AND (store_id IN (?, ?) OR store_id IS NULL)" + order + " LIMIT ?",
			[]any{t0, t1, int64(1), int64(2), "s1", evil, 10},
		},
		{"stores only", ActiveVisitorsQuery{StoreIDs: []string{evil}}, base + " WHERE store_id IN (?)" + order, []any{evil}},
		{"null store only", ActiveVisitorsQuery{NullStore: true}, base + " WHERE store_id IS NULL" + order, nil},
		{"store named null is a value", ActiveVisitorsQuery{StoreIDs: []string{"null"}}, base + " WHERE store_id IN (?)" + order, []any{"null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, args := activeVisitorsSQL(tt.q)
			if sql != tt.wantSQL {
				t.Errorf("SQL\n got: %s\nwant: %s", sql, tt.wantSQL)
			}
			if !reflect.DeepEqual(args, tt.wantArgs) && (len(args) != 0 || len(tt.wantArgs) != 0) {
				t.Errorf("args = %#v, want %#v", args, tt.wantArgs)
			}
			for _, s := range tt.q.StoreIDs {
				if strings.Contains(sql, s) {
					t.Errorf("SQL text contains the store id %q: %s", s, sql)
				}
			}
		})
	}
}
