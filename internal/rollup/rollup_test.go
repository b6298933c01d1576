package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/query"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/testenv/schema"
)

// t0 is when the fixtures' events happen; the passes run an hour later.
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// testDB creates a database of t's own with both stores, then the
// rollups' migration as shipped (unless bare), and returns a connection
// whose default database it is. Merges are stopped, so duplicates stay in
// their parts.
func testDB(t *testing.T, withRollups bool) driver.Conn {
	t.Helper()
	conn, _ := testenv.ClickHouseDatabase(t, "rollup", testenv.CreateShadow, testenv.CreateActiveVisitors)
	if withRollups {
		schema.Rollups(t, conn)
	}
	return conn
}

func newSealer(t *testing.T, conn driver.Conn) *Sealer {
	t.Helper()
	s, err := New(Config{}, conn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pass runs one pass an hour after t0 and checks how many minutes it
// sealed.
func pass(t *testing.T, s *Sealer, want int) {
	t.Helper()
	n, err := s.Pass(context.Background(), t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	if n != want {
		t.Fatalf("Pass sealed %d minutes, want %d", n, want)
	}
}

type rating struct {
	id     string
	at     time.Time
	rating int32
}

func typeOf(r int32) string {
	switch {
	case r%15 == 0:
		return "ShaDow"
	case r%3 == 0:
		return "Sha"
	case r%5 == 0:
		return "Dow"
	}
	return "Incompatible"
}

// insert writes rows in one block, as the Kafka engine's view does.
func insert(t *testing.T, conn driver.Conn, rows ...rating) {
	t.Helper()
	values := make([][]any, len(rows))
	for i, r := range rows {
		values[i] = []any{typeOf(r.rating), r.id, r.at, r.rating}
	}
	testenv.Insert(t, conn, "shadow (type, unique_id, emit_timestamp, rating)", values...)
}

// ratings returns n ratings over minutes [from, from+span), ids prefixed.
func ratings(prefix string, n int, from time.Time, span time.Duration) []rating {
	out := make([]rating, n)
	for i := range out {
		out[i] = rating{fmt.Sprintf("%s%d", prefix, i), from.Add(time.Duration(i) * span / time.Duration(n)).Truncate(time.Second), int32(1 + i%100)}
	}
	return out
}

// checkShadow compares every grouping of query shadow, over a range with
// partial minutes at both ends and over an open one, with shadow read
// with FINAL.
func checkShadow(t *testing.T, conn driver.Conn) {
	t.Helper()
	ctx := context.Background()
	for _, r := range []struct{ since, until time.Time }{
		{at(-30).Add(10 * time.Second), at(30).Add(20 * time.Second)},
		{at(-30), time.Time{}},
		{time.Time{}, time.Time{}},
	} {
		for _, by := range query.ShadowGroupings {
			got, err := query.Shadow(ctx, conn, query.ShadowQuery{Since: r.since, Until: r.until, By: by})
			if err != nil {
				t.Fatalf("query shadow: %v", err)
			}
			want := finalShadow(t, conn, r.since, r.until, by)
			if !reflect.DeepEqual(got.Rows, want) {
				t.Fatalf("query shadow --by %s over [%s, %s):\n got %v\nwant %v (FINAL)", by, r.since, r.until, got.Rows, want)
			}
		}
	}
}

// finalShadow is the answer as the store alone gives it, with FINAL.
func finalShadow(t *testing.T, conn driver.Conn, since, until time.Time, by string) [][]any {
	t.Helper()
	bucket := map[string]string{"minute": "toStartOfMinute(emit_timestamp)", "hour": "toStartOfHour(emit_timestamp)", "day": "toStartOfDay(emit_timestamp)"}[by]
	where := " WHERE emit_timestamp >= ? AND emit_timestamp < ?"
	if since.IsZero() {
		since = query.MinTime
	}
	if until.IsZero() {
		until = query.MaxTime
	}
	sql := "SELECT toString(type) AS t, count() AS n FROM shadow FINAL" + where + " GROUP BY type ORDER BY n DESC, type"
	if bucket != "" {
		sql = "SELECT " + bucket + " AS b, toString(type), count() FROM shadow FINAL" + where + " GROUP BY b, type ORDER BY b, type"
	}
	return readRows(t, conn, func(rows driver.Rows) ([]any, error) {
		var (
			b   time.Time
			typ string
			n   uint64
		)
		if bucket == "" {
			err := rows.Scan(&typ, &n)
			return []any{typ, n}, err
		}
		err := rows.Scan(&b, &typ, &n)
		return []any{b.UTC(), typ, n}, err
	}, sql, since, until)
}

// readRows sends sql with args and returns its rows as row reads them,
// without those row returns nil for.
func readRows(t *testing.T, conn driver.Conn, row func(driver.Rows) ([]any, error), sql string, args ...any) [][]any {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := [][]any{}
	for rows.Next() {
		r, err := row(rows)
		if err != nil {
			t.Fatal(err)
		}
		if r != nil {
			out = append(out, r)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sealedMinutes is how many minutes of shadow are sealed.
func sealedMinutes(t *testing.T, conn driver.Conn) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT uniqExact(minute) FROM shadow_minutes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDuplicatesCountOnceBeforeAndAfterTheirMinuteIsSealed(t *testing.T) {
	conn := testDB(t, true)
	rs := ratings("a", 300, at(0), 3*time.Minute)
	insert(t, conn, rs...)
	insert(t, conn, rs[:50]...) // the Kafka engine inserting a block again
	insert(t, conn, rs[10], rs[10], rs[299])
	checkShadow(t, conn) // nothing sealed: all from the store
	s := newSealer(t, conn)
	pass(t, s, 3)
	checkShadow(t, conn)

	// Re-delivered after the seal (an agent restarted, the engine
	// rebalanced): every minute's counter moved, so it is read from the
	// store until it is sealed again, then from its new seal.
	insert(t, conn, rs[0], rs[100], rs[200])
	checkShadow(t, conn)
	pass(t, s, 3)
	checkShadow(t, conn)
	pass(t, s, 0)
	// A restarted worker, or a second one, seals nothing more.
	pass(t, newSealer(t, conn), 0)
	checkShadow(t, conn)
}

func TestALateFirstDeliveryIntoASealedMinuteIsCounted(t *testing.T) {
	conn := testDB(t, true)
	insert(t, conn, ratings("a", 120, at(0), 2*time.Minute)...)
	s := newSealer(t, conn)
	pass(t, s, 2)
	checkShadow(t, conn)

	// A rating stamped in the first minute arrives now: a worker that was
	// down, or a dead letter replayed.
	insert(t, conn, rating{"late", at(0).Add(30 * time.Second), 15}, rating{"now", at(20), 3})
	checkShadow(t, conn)
	got, err := query.Shadow(context.Background(), conn, query.ShadowQuery{Since: at(0), Until: at(1), Types: []string{"ShaDow"}})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]any
	for _, r := range finalShadow(t, conn, at(0), at(1), "type") {
		if r[0] == "ShaDow" {
			want = append(want, r)
		}
	}
	if len(want) != 1 || !reflect.DeepEqual(got.Rows, want) {
		t.Fatalf("ShaDow in the sealed minute after a late arrival: %v, want %v", got.Rows, want)
	}
	pass(t, s, 2) // the late minute again, and the new one
	checkShadow(t, conn)
}

func TestTheGuardsCopiesOfEarlierRecordsCountOnce(t *testing.T) {
	conn := testDB(t, true)
	rs := ratings("a", 600, at(0), 10*time.Minute)
	insert(t, conn, rs[:400]...)
	s := newSealer(t, conn)
	pass(t, s, 7)
	// The engine stopped on a bad record after rs[399]; the guard
	// produced again the valid records between the committed offset and
	// the bad one (rs[300:400], spanning sealed minutes), then the engine
	// went on with the rest.
	insert(t, conn, rs[300:400]...)
	insert(t, conn, rs[400:]...)
	checkShadow(t, conn)
	pass(t, s, 5) // minutes 5 and 6 again, 7 to 9 for the first time
	checkShadow(t, conn)
	if n := sealedMinutes(t, conn); n != 10 {
		t.Fatalf("%d minutes sealed, want 10", n)
	}
}

func TestRowsStoredBeforeTheCountersAreSealedToo(t *testing.T) {
	conn := testDB(t, false)
	rs := ratings("a", 100, at(0), 2*time.Minute)
	insert(t, conn, rs...)
	insert(t, conn, rs[:5]...)
	schema.Rollups(t, conn) // migrating a store that holds rows already
	checkShadow(t, conn)
	s := newSealer(t, conn)
	pass(t, s, 2)
	checkShadow(t, conn)
	insert(t, conn, rs[0]) // counted now: the minute is read from the store again
	checkShadow(t, conn)
	pass(t, s, 1)
	checkShadow(t, conn)
}

type window struct {
	account int64
	store   *string
	start   time.Time
	count   uint64
}

func insertWindows(t *testing.T, conn driver.Conn, ws ...window) {
	t.Helper()
	values := make([][]any, len(ws))
	for i, w := range ws {
		values[i] = []any{w.account, w.store, w.start, w.start.Add(10 * time.Second), w.count}
	}
	testenv.Insert(t, conn, "active_visitors (account_id, store_id, window_start, window_end, count)", values...)
}

// checkVisitors compares query active-visitors with active_visitors read
// with FINAL, in the order the query documents.
func checkVisitors(t *testing.T, conn driver.Conn, q query.ActiveVisitorsQuery) {
	t.Helper()
	ctx := context.Background()
	got, err := query.ActiveVisitors(ctx, conn, q)
	if err != nil {
		t.Fatal(err)
	}
	final := q
	final.Since, final.Until = at(-600), at(600)
	if !q.Since.IsZero() {
		final.Since = q.Since
	}
	if !q.Until.IsZero() {
		final.Until = q.Until
	}
	want := readRows(t, conn, func(rows driver.Rows) ([]any, error) {
		var (
			account    int64
			store      *string
			start, end time.Time
			n          uint64
		)
		if err := rows.Scan(&account, &store, &start, &end, &n); err != nil {
			return nil, err
		}
		if len(q.AccountIDs) > 0 && !slices.Contains(q.AccountIDs, account) || q.NullStore && store != nil {
			return nil, nil // the filters these tests use
		}
		var s any
		if store != nil {
			s = *store
		}
		return []any{account, s, start.UTC(), end.UTC(), n}, nil
	}, "SELECT account_id, store_id, window_start, window_end, count FROM active_visitors FINAL"+
		" WHERE window_start >= ? AND window_start < ? ORDER BY window_start, account_id, store_id", final.Since, final.Until)
	if !reflect.DeepEqual(got.Rows, want) {
		t.Fatalf("query active-visitors %+v:\n got %v\nwant %v (FINAL)", q, got.Rows, want)
	}
}

func TestActiveVisitorsListEachWindowOnceThroughSealsAndLateCopies(t *testing.T) {
	conn := testDB(t, true)
	uk, none := "uk", (*string)(nil)
	var ws []window
	for i := 0; i < 18; i++ { // three minutes of 10-second windows, two keys
		ws = append(ws, window{1, &uk, at(0).Add(time.Duration(i) * 10 * time.Second), uint64(1 + i)},
			window{2, none, at(0).Add(time.Duration(i) * 10 * time.Second), uint64(100 + i)})
	}
	insertWindows(t, conn, ws...)
	insertWindows(t, conn, ws[:4]...) // re-emitted after a restart
	ranges := []query.ActiveVisitorsQuery{
		{Since: at(-1).Add(30 * time.Second), Until: at(2).Add(15 * time.Second)},
		{},
		{Since: at(1)},
	}
	for _, q := range ranges {
		checkVisitors(t, conn, q)
	}
	s := newSealer(t, conn)
	pass(t, s, 3)
	for _, q := range ranges {
		checkVisitors(t, conn, q)
	}
	// Late: a copy of a sealed window, and a window of a new key in a
	// sealed minute.
	insertWindows(t, conn, ws[5], window{3, &uk, at(1).Add(20 * time.Second), 7})
	for _, q := range ranges {
		checkVisitors(t, conn, q)
	}
	pass(t, s, 2)
	for _, q := range ranges {
		checkVisitors(t, conn, q)
	}
	checkVisitors(t, conn, query.ActiveVisitorsQuery{AccountIDs: []int64{2}, NullStore: true})
}

func TestRunsCutsSortedMinutesIntoConsecutiveRunsOfAtMostMax(t *testing.T) {
	ms := func(ns ...int) []minute {
		out := make([]minute, len(ns))
		for i, n := range ns {
			out[i] = minute{at: at(n), arrived: uint64(n)}
		}
		return out
	}
	got := runs(ms(0, 1, 2, 5, 6, 9), 2)
	want := [][]minute{ms(0, 1), ms(2), ms(5, 6), ms(9)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("runs = %v, want %v", got, want)
	}
	if got := runs(nil, 3); len(got) != 0 {
		t.Fatalf("runs of nothing = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{Interval: -time.Second}, "rollup interval -1s is negative"},
		{Config{Lag: -time.Second}, "rollup lag -1s is negative"},
		{Config{MaxMinutes: -1}, "want at least 1"},
	} {
		testenv.CheckErr(t, "Validate", tt.cfg.WithDefaults().Validate(), tt.want)
	}
	if _, err := New(Config{}, nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New without a connection: no error")
	}
}

// Passes running while rows arrive, duplicates and late ones among them,
// never leave a seal that looks clean and is wrong: once the inserts stop,
// the answers equal FINAL's before any further pass, and after one.
func TestPassesConcurrentWithInsertsLeaveNoWrongCleanSeal(t *testing.T) {
	conn := testDB(t, true)
	r := rand.New(rand.NewPCG(1, 2))
	var sent []rating
	batches := make([][]rating, 60)
	for i := range batches {
		for j := 0; j < 50; j++ {
			if len(sent) > 0 && r.IntN(3) == 0 {
				batches[i] = append(batches[i], sent[r.IntN(len(sent))]) // a copy
				continue
			}
			rt := rating{fmt.Sprintf("c%d", len(sent)), at(r.IntN(10)).Add(time.Duration(r.IntN(60)) * time.Second), int32(1 + r.IntN(100))}
			sent = append(sent, rt)
			batches[i] = append(batches[i], rt)
		}
	}
	done := make(chan struct{})
	passes := make(chan error, 1)
	go func() {
		s := newSealer(t, conn)
		for {
			select {
			case <-done:
				passes <- nil
				return
			default:
			}
			if _, err := s.Pass(context.Background(), t0.Add(time.Hour)); err != nil {
				passes <- err
				return
			}
		}
	}()
	for _, b := range batches {
		insert(t, conn, b...)
	}
	close(done)
	if err := <-passes; err != nil {
		t.Fatal(err)
	}
	checkShadow(t, conn)
	if _, err := newSealer(t, conn).Pass(context.Background(), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := sealedMinutes(t, conn); n != 10 {
		t.Fatalf("%d minutes sealed, want all 10", n)
	}
	checkShadow(t, conn)
}
