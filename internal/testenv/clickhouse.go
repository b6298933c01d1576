package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The stores as the migrations create them, for tests that need the tables
// without the Kafka engine in front. %s is the database.
const (
	CreateShadow = `CREATE TABLE %s.shadow (type Enum8('Incompatible' = 0, 'Sha' = 1, 'Dow' = 2, 'ShaDow' = 3), unique_id String, emit_timestamp DateTime('UTC'), rating Int32)
  ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(emit_timestamp) ORDER BY (emit_timestamp, unique_id)`
	CreateActiveVisitors = `CREATE TABLE %s.active_visitors (account_id Int64, store_id Nullable(String), window_start DateTime('UTC'), window_end DateTime('UTC'), count UInt64)
  ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(window_start) ORDER BY (account_id, ifNull(store_id, ''), isNull(store_id), window_start)`
)

// ClickHouseDatabase creates a database of t's own (dropped at cleanup),
// runs each statement in it (%s in a statement is the database), stops
// merges on the tables it creates so duplicate rows stay in their parts
// until read with FINAL, and returns a connection whose default database it
// is, with the database's name.
func ClickHouseDatabase(t testing.TB, prefix string, statements ...string) (driver.Conn, string) {
	t.Helper()
	addr := ClickHouseAddr(t)
	db := Name(t, prefix)
	ctx := context.Background()
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatalf("open ClickHouse: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
	})
	for _, stmt := range statements {
		stmt = fmt.Sprintf(stmt, db)
		if err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if f := strings.Fields(stmt); len(f) > 2 && f[0] == "CREATE" && f[1] == "TABLE" {
			if err := admin.Exec(ctx, "SYSTEM STOP MERGES "+f[2]); err != nil {
				t.Fatalf("stop merges on %s: %v", f[2], err)
			}
		}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db}})
	if err != nil {
		t.Fatalf("open ClickHouse database %s: %v", db, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, db
}

// CheckErr fails t unless err matches want: nil when want is empty, else an
// error whose text contains want.
func CheckErr(t testing.TB, what string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("%s = %v, want nil", what, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s = %v, want an error containing %q", what, err, want)
	}
}

// Insert sends rows to into, a table and its column list, in one block, as
// the Kafka engine's views do.
func Insert(t testing.TB, conn driver.Conn, into string, rows ...[]any) {
	t.Helper()
	batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+into)
	if err != nil {
		t.Fatalf("prepare the block into %s: %v", into, err)
	}
	for _, r := range rows {
		if err := batch.Append(r...); err != nil {
			t.Fatalf("append a row into %s: %v", into, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send the block into %s: %v", into, err)
	}
}
