// Package schema applies one shipped migration, as rendered for the oldest
// supported server, in a test's database. It is apart from testenv because
// it imports the clickhouse package, whose own tests use testenv.
package schema

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/clickhouse"
)

// Rollups runs the rollups' migration (000004), as shipped, in conn's
// database (whose stores exist), and stops merges on its tables so that
// duplicates stay in their parts.
func Rollups(t testing.TB, conn driver.Conn) {
	t.Helper()
	Apply(t, conn, "000004_rollups.up.sql",
		"shadow_arrivals", "shadow_minutes", "active_visitors_arrivals", "active_visitors_sealed", "active_visitors_seals")
}

// Apply runs the statements of the up migration named name in conn's
// database, then stops merges on the tables listed, failing t on any error.
func Apply(t testing.TB, conn driver.Conn, name string, stopMerges ...string) {
	t.Helper()
	migrations, err := clickhouse.RenderUp(clickhouse.KafkaSource{}, clickhouse.Oldest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range migrations {
		if m.Name != name {
			continue
		}
		stmts, err := clickhouse.Statements(m.SQL)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		for _, table := range stopMerges {
			if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+table); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	t.Fatalf("no migration %s", name)
}
