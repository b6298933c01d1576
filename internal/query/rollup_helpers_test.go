package query

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/clickhouse"
)

// createRollups runs the rollups' migration, as shipped, in conn's
// database (whose stores exist), and stops merges on its tables so that
// duplicates stay in their parts.
func createRollups(t *testing.T, conn driver.Conn) {
	t.Helper()
	migrations, err := clickhouse.RenderUp(clickhouse.KafkaSource{}, clickhouse.Oldest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range migrations {
		if m.Name != "000004_rollups.up.sql" {
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
		for _, table := range []string{"shadow_arrivals", "shadow_minutes", "active_visitors_arrivals", "active_visitors_sealed", "active_visitors_seals"} {
			if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+table); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	t.Fatal("no migration 000004_rollups.up.sql")
}
