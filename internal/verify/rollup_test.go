package verify

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/rollup"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/testenv/schema"
)

func TestReconcileRollupCountsEveryDifference(t *testing.T) {
	r := ReconcileRollup(
		map[string]uint64{"a": 1, "b": 2, "extra": 5},
		map[string]uint64{"a": 1, "b": 3, "missing": 4},
	)
	if r.Buckets != 4 || r.Mismatched != 3 || r.OK() {
		t.Fatalf("got %s, want 4 buckets, 3 mismatched", r)
	}
	if !ReconcileRollup(map[string]uint64{"a": 1}, map[string]uint64{"a": 1}).OK() {
		t.Fatal("equal answers do not reconcile")
	}
}

// rollupDB is a database of its own with both stores and the rollups'
// migration as shipped.
func rollupDB(t *testing.T) driver.Conn {
	t.Helper()
	conn, _ := testenv.ClickHouseDatabase(t, "verify", testenv.CreateShadow, testenv.CreateActiveVisitors)
	schema.Apply(t, conn, "000004_rollups.up.sql")
	return conn
}

func TestVerifyRollupCatchesABrokenSeal(t *testing.T) {
	conn := rollupDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	uk := "uk"
	testenv.Insert(t, conn, "shadow (type, unique_id, emit_timestamp, rating)",
		[]any{"Sha", "a", at(5 * time.Second), int32(3)}, []any{"Sha", "a", at(5 * time.Second), int32(3)}, []any{"Dow", "b", at(time.Minute), int32(5)})
	testenv.Insert(t, conn, "active_visitors (account_id, store_id, window_start, window_end, count)",
		[]any{int64(1), &uk, t0, at(10 * time.Second), uint64(4)}, []any{int64(1), &uk, t0, at(10 * time.Second), uint64(4)},
		[]any{int64(2), (*string)(nil), at(10 * time.Second), at(20 * time.Second), uint64(1)})
	s, err := rollup.New(rollup.Config{}, conn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Pass(ctx, t0.Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("Pass = %d, %v; want 3 minutes sealed", n, err)
	}
	src := &Source{Conn: conn}
	r, err := src.Rollup(ctx, time.Time{}, time.Time{})
	if err != nil || !r.OK() || r.Buckets != 4 {
		t.Fatalf("Rollup on sound seals = %s, %v; want 4 buckets, none mismatched", r, err)
	}

	// A seal that says one Sha too many, with the minute's true arrival
	// count so that it looks clean, and a newer version than the real one;
	// and a copy of the minute's windows with another count, which leaves
	// out the minute's other window.
	const newest = uint64(1<<64 - 1)
	testenv.Insert(t, conn, "shadow_minutes (minute, type, events, arrived, sealed)", []any{t0, "Sha", uint64(2), uint64(2), newest})
	testenv.Insert(t, conn, "active_visitors_sealed (sealed, account_id, store_id, window_start, window_end, count)",
		[]any{newest, int64(1), &uk, t0, at(10 * time.Second), uint64(5)})
	testenv.Insert(t, conn, "active_visitors_seals (minute, arrived, sealed)", []any{t0, uint64(3), newest})
	r, err = src.Rollup(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mismatched != 3 || !strings.Contains(r.String(), "shadow@2026-11-23T10:00:00Z/Sha:2!=1") ||
		!strings.Contains(r.String(), `active_visitors@2026-11-23T10:00:00Z/1/"uk":5!=4`) ||
		!strings.Contains(r.String(), "active_visitors@2026-11-23T10:00:10Z/2/null:0!=1") {
		t.Fatalf("Rollup on broken seals = %s; want the three differences named", r)
	}
}
