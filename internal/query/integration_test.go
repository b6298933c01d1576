package query

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/testenv/schema"
)

// testDB creates a database of its own for t with both stores and their
// rollups, as the migrations create them, and returns a connection whose
// default database it is.
func testDB(t *testing.T) (driver.Conn, string) {
	t.Helper()
	conn, db := testenv.ClickHouseDatabase(t, "q", testenv.CreateShadow, testenv.CreateActiveVisitors)
	schema.Rollups(t, conn)
	return conn, db
}

type rating struct {
	typ    string
	id     string
	at     time.Time
	rating int32
}

func insertShadow(t *testing.T, conn driver.Conn, db string, rows ...rating) {
	t.Helper()
	values := make([][]any, len(rows))
	for i, r := range rows {
		values[i] = []any{r.typ, r.id, r.at, r.rating}
	}
	testenv.Insert(t, conn, db+".shadow (type, unique_id, emit_timestamp, rating)", values...)
}

type window struct {
	account    int64
	store      *string
	start, end time.Time
	count      uint64
}

func insertVisitors(t *testing.T, conn driver.Conn, db string, rows ...window) {
	t.Helper()
	values := make([][]any, len(rows))
	for i, r := range rows {
		values[i] = []any{r.account, r.store, r.start, r.end, r.count}
	}
	testenv.Insert(t, conn, db+".active_visitors (account_id, store_id, window_start, window_end, count)", values...)
}

func count(t *testing.T, conn driver.Conn, sql string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// seedShadow inserts 10 distinct ratings and 4 re-deliveries of them, split
// over batches so that duplicates sit in different parts as well as in one.
func seedShadow(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	a := rating{"Sha", "a", at("2026-11-23T10:00:05Z"), 3}
	d := rating{"Dow", "d", at("2026-11-23T10:01:00Z"), 10}
	j := rating{"Sha", "j", at("2026-12-01T00:00:00Z"), 3} // another month, another partition
	insertShadow(t, conn, db,
		a, a,
		rating{"Sha", "b", at("2026-11-23T10:00:30Z"), 6},
		rating{"Dow", "c", at("2026-11-23T10:00:59Z"), 5},
		d,
		rating{"ShaDow", "e", at("2026-11-23T10:01:30Z"), 15},
		rating{"Incompatible", "f", at("2026-11-23T10:02:00Z"), 1},
		rating{"Incompatible", "g", at("2026-11-23T11:00:00Z"), 2},
		rating{"Sha", "h", at("2026-11-23T11:30:00Z"), 9},
		rating{"Sha", "i", at("2026-11-24T00:00:00Z"), 12},
		j,
	)
	insertShadow(t, conn, db, a, d, j) // re-delivered
	if raw := count(t, conn, "SELECT count() FROM shadow"); raw <= 10 {
		t.Fatalf("raw shadow rows = %d, want the duplicates still there (> 10)", raw)
	}
}

func TestShadowCountsExactly(t *testing.T) {
	conn, db := testDB(t)
	seedShadow(t, conn, db)
	ctx := context.Background()

	tests := []struct {
		name    string
		q       ShadowQuery
		columns []string
		rows    [][]any
	}{
		{
			name:    "by type, most first, ties in type order",
			q:       ShadowQuery{},
			columns: []string{"type", "count"},
			rows:    [][]any{{"Sha", uint64(5)}, {"Incompatible", uint64(2)}, {"Dow", uint64(2)}, {"ShaDow", uint64(1)}},
		},
		{
			name:    "by type with a type filter",
			q:       ShadowQuery{Types: []string{"Dow", "ShaDow"}},
			columns: []string{"type", "count"},
			rows:    [][]any{{"Dow", uint64(2)}, {"ShaDow", uint64(1)}},
		},
		{
			name:    "since inclusive, until exclusive",
			q:       ShadowQuery{Since: at("2026-11-23T10:00:30Z"), Until: at("2026-11-23T11:30:00Z")},
			columns: []string{"type", "count"},
			rows:    [][]any{{"Incompatible", uint64(2)}, {"Dow", uint64(2)}, {"Sha", uint64(1)}, {"ShaDow", uint64(1)}},
		},
		{
			name:    "since with a fraction excludes the second before it",
			q:       ShadowQuery{Since: at("2026-11-23T10:00:05Z").Add(time.Millisecond), Until: at("2026-11-23T10:00:31Z")},
			columns: []string{"type", "count"},
			rows:    [][]any{{"Sha", uint64(1)}},
		},
		{
			name:    "limit",
			q:       ShadowQuery{Limit: 2},
			columns: []string{"type", "count"},
			rows:    [][]any{{"Sha", uint64(5)}, {"Incompatible", uint64(2)}},
		},
		{
			name:    "by minute",
			q:       ShadowQuery{By: "minute", Until: at("2026-11-23T11:00:00Z")},
			columns: []string{"minute", "type", "count"},
			rows: [][]any{
				{at("2026-11-23T10:00:00Z"), "Sha", uint64(2)},
				{at("2026-11-23T10:00:00Z"), "Dow", uint64(1)},
				{at("2026-11-23T10:01:00Z"), "Dow", uint64(1)},
				{at("2026-11-23T10:01:00Z"), "ShaDow", uint64(1)},
				{at("2026-11-23T10:02:00Z"), "Incompatible", uint64(1)},
			},
		},
		{
			name:    "by minute, one type, limit",
			q:       ShadowQuery{By: "minute", Types: []string{"Dow"}, Limit: 1},
			columns: []string{"minute", "type", "count"},
			rows:    [][]any{{at("2026-11-23T10:00:00Z"), "Dow", uint64(1)}},
		},
		{
			name:    "by hour",
			q:       ShadowQuery{By: "hour"},
			columns: []string{"hour", "type", "count"},
			rows: [][]any{
				{at("2026-11-23T10:00:00Z"), "Incompatible", uint64(1)},
				{at("2026-11-23T10:00:00Z"), "Sha", uint64(2)},
				{at("2026-11-23T10:00:00Z"), "Dow", uint64(2)},
				{at("2026-11-23T10:00:00Z"), "ShaDow", uint64(1)},
				{at("2026-11-23T11:00:00Z"), "Incompatible", uint64(1)},
				{at("2026-11-23T11:00:00Z"), "Sha", uint64(1)},
				{at("2026-11-24T00:00:00Z"), "Sha", uint64(1)},
				{at("2026-12-01T00:00:00Z"), "Sha", uint64(1)},
			},
		},
		{
			name:    "by day",
			q:       ShadowQuery{By: "day", Types: []string{"Sha"}},
			columns: []string{"day", "type", "count"},
			rows: [][]any{
				{at("2026-11-23T00:00:00Z"), "Sha", uint64(3)},
				{at("2026-11-24T00:00:00Z"), "Sha", uint64(1)},
				{at("2026-12-01T00:00:00Z"), "Sha", uint64(1)},
			},
		},
		{
			name:    "nothing in range",
			q:       ShadowQuery{Since: at("2030-01-01T00:00:00Z")},
			columns: []string{"type", "count"},
			rows:    [][]any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Shadow(ctx, conn, tt.q)
			if err != nil {
				t.Fatalf("Shadow: %v", err)
			}
			if !reflect.DeepEqual(res.Columns, tt.columns) {
				t.Errorf("columns = %v, want %v", res.Columns, tt.columns)
			}
			if !reflect.DeepEqual(res.Rows, tt.rows) {
				t.Errorf("rows\n got: %v\nwant: %v", res.Rows, tt.rows)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestActiveVisitorsListsWindowsOnce(t *testing.T) {
	conn, db := testDB(t)
	ctx := context.Background()
	w0, w1, w2, w5 := at("2026-11-23T10:00:00Z"), at("2026-11-23T10:01:00Z"), at("2026-11-23T10:02:00Z"), at("2026-11-23T10:05:00Z")
	s1 := window{1, ptr("s1"), w0, w1, 5}
	none := window{1, nil, w0, w1, 3}
	insertVisitors(t, conn, db,
		s1, s1, none,
		window{1, ptr(""), w0, w1, 4},
		window{2, ptr("s1"), w0, w1, 6},
		window{2, ptr("null"), w1, w2, 1},
		window{1, ptr("s2"), w1, w2, 2},
		window{3, ptr(`it's \ tricky ?`), w2, w2.Add(time.Minute), 9},
		window{1, ptr("s1"), w5, w5.Add(time.Minute), 8},
	)
	insertVisitors(t, conn, db, none, s1) // re-emitted after a restart

	row := func(account int64, store any, start time.Time, n uint64) []any {
		return []any{account, store, start, start.Add(time.Minute), n}
	}
	all := [][]any{
		row(1, "", w0, 4),
		row(1, "s1", w0, 5),
		row(1, nil, w0, 3),
		row(2, "s1", w0, 6),
		row(1, "s2", w1, 2),
		row(2, "null", w1, 1),
		row(3, `it's \ tricky ?`, w2, 9),
		row(1, "s1", w5, 8),
	}
	tests := []struct {
		name string
		q    ActiveVisitorsQuery
		rows [][]any
	}{
		{"everything, each window once, NULL store last", ActiveVisitorsQuery{}, all},
		{"accounts", ActiveVisitorsQuery{AccountIDs: []int64{2, 3}}, [][]any{all[3], all[5], all[6]}},
		{"one store", ActiveVisitorsQuery{StoreIDs: []string{"s1"}}, [][]any{all[1], all[3], all[7]}},
		{"stores and NULL", ActiveVisitorsQuery{StoreIDs: []string{"s2", ""}, NullStore: true}, [][]any{all[0], all[2], all[4]}},
		{"NULL only", ActiveVisitorsQuery{NullStore: true}, [][]any{all[2]}},
		{"a store named null is not NULL", ActiveVisitorsQuery{StoreIDs: []string{"null"}}, [][]any{all[5]}},
		{"a store id with quote, backslash and ? round-trips", ActiveVisitorsQuery{StoreIDs: []string{`it's \ tricky ?`}}, [][]any{all[6]}},
		{"since and until on window_start", ActiveVisitorsQuery{Since: w1, Until: w5}, [][]any{all[4], all[5], all[6]}},
		{"account, store and limit", ActiveVisitorsQuery{AccountIDs: []int64{1}, StoreIDs: []string{"s1"}, Limit: 1}, [][]any{all[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ActiveVisitors(ctx, conn, tt.q)
			if err != nil {
				t.Fatalf("ActiveVisitors: %v", err)
			}
			want := []string{"account_id", "store_id", "window_start", "window_end", "count"}
			if !reflect.DeepEqual(res.Columns, want) {
				t.Errorf("columns = %v, want %v", res.Columns, want)
			}
			if !reflect.DeepEqual(res.Rows, tt.rows) {
				t.Errorf("rows\n got: %v\nwant: %v", res.Rows, tt.rows)
			}
		})
	}
}

// A store id is a value however it is spelled: SQL in it selects nothing and
// changes nothing.
func TestActiveVisitorsStoreIDIsNeverSQL(t *testing.T) {
	conn, db := testDB(t)
	ctx := context.Background()
	w0 := at("2026-11-23T10:00:00Z")
	insertVisitors(t, conn, db,
		window{1, ptr("s1"), w0, w0.Add(time.Minute), 5},
		window{1, nil, w0, w0.Add(time.Minute), 3},
		window{2, ptr("x"), w0, w0.Add(time.Minute), 1},
	)
	const total = "SELECT count() FROM active_visitors"
	before := count(t, conn, total)

	for _, evil := range []string{
		`x' OR 1=1 --`,
		`x\' OR 1=1 --`,
		`x') OR 1=1 OR ('`,
		`'); DROP TABLE active_visitors; --`,
		`x' OR store_id IS NULL OR '`,
		"x' OR 1=1 #",
		`?`,
	} {
		t.Run(evil, func(t *testing.T) {
			res, err := ActiveVisitors(ctx, conn, ActiveVisitorsQuery{StoreIDs: []string{evil}})
			if err != nil {
				t.Fatalf("ActiveVisitors: %v", err)
			}
			if len(res.Rows) != 0 {
				t.Errorf("store id %q selected %d rows, want 0: %v", evil, len(res.Rows), res.Rows)
			}
			if after := count(t, conn, total); after != before {
				t.Errorf("table holds %d rows after the query, want %d", after, before)
			}
		})
	}
}

func TestQueriesReportServerErrors(t *testing.T) {
	conn, _ := testDB(t)
	if err := conn.Exec(context.Background(), "DROP TABLE shadow"); err != nil {
		t.Fatal(err)
	}
	_, err := Shadow(context.Background(), conn, ShadowQuery{})
	if err == nil || !strings.Contains(err.Error(), "query shadow: ") || !strings.Contains(err.Error(), "shadow doesn't exist") {
		t.Fatalf("Shadow on a missing table: error = %v, want it to name the query and the server's reason", err)
	}
}

func TestQueriesFailFastWhenClickHouseIsDown(t *testing.T) {
	addr := testenv.ClosedAddr(t)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = ActiveVisitors(context.Background(), conn, ActiveVisitorsQuery{})
	if err == nil || !strings.Contains(err.Error(), "query active_visitors: ") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("ActiveVisitors with ClickHouse down: error = %v, want it to name the query and the address", err)
	}
}
