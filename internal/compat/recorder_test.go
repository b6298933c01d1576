package compat

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestRecorderKeepsStatementsAsClickHouseGoBindsThem(t *testing.T) {
	ctx := context.Background()
	rec := NewRecorder("Europe/Berlin")
	t.Cleanup(rec.Close)
	rec.Answer("SELECT n", []string{"UInt64", "String"}, []any{uint64(7), "seven"})
	conn, err := rec.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := conn.Exec(ctx, "ALTER TABLE t DELETE WHERE s = ? AND at < ?", `x' OR 1=1 --\`, at); err != nil {
		t.Fatal(err)
	}
	var (
		n uint64
		s string
	)
	if err := conn.QueryRow(ctx, "SELECT n, s FROM t WHERE id IN (?, ?)", 1, int64(-2)).Scan(&n, &s); err != nil || n != 7 || s != "seven" {
		t.Fatalf("answered %d, %q, %v; want 7, seven", n, s, err)
	}
	rows, err := conn.Query(ctx, "SELECT 1 FROM t")
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("a statement without an answer got a row")
	}
	rows.Close()
	want := []string{
		`ALTER TABLE t DELETE WHERE s = 'x\' OR 1=1 --\\' AND at < toDateTime('2026-01-02 03:04:05', 'UTC')`,
		"SELECT n, s FROM t WHERE id IN (1, -2)",
		"SELECT 1 FROM t",
	}
	if got := rec.Take(); !slices.Equal(got, want) {
		t.Errorf("recorded\n%q\nwant\n%q", got, want)
	}
	if got := rec.Take(); len(got) != 0 {
		t.Errorf("a second Take returned %q", got)
	}
}
