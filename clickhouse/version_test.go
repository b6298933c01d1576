package clickhouse_test

import (
	"context"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/testenv"
)

func TestCheckCommitOrderNamesTheSquashingSettingsOnOldReleasesOnly(t *testing.T) {
	conn, _ := testenv.ClickHouseDatabase(t, "commitorder")
	// The settings are read as the session sees them: a context's settings
	// stand in for a profile.
	with := func(rows, bytes int) context.Context {
		return ch.Context(context.Background(), ch.WithSettings(ch.Settings{
			"min_insert_block_size_rows": rows, "min_insert_block_size_bytes": bytes,
		}))
	}
	old := clickhouse.Version{Major: 18, Minor: 16, Patch: 1}
	err := clickhouse.CheckCommitOrder(with(1048576, 0), conn, old)
	testenv.CheckErr(t, "squashing rows on 18.16", err, "(min_insert_block_size_rows = 1048576)")
	testenv.CheckErr(t, "the fix", err, "set min_insert_block_size_rows and min_insert_block_size_bytes to 0 in the default profile")
	err = clickhouse.CheckCommitOrder(with(0, 268435456), conn, old)
	testenv.CheckErr(t, "squashing bytes on 18.16", err, "(min_insert_block_size_bytes = 268435456)")
	if err := clickhouse.CheckCommitOrder(with(0, 0), conn, old); err != nil {
		t.Errorf("no squashing on 18.16: %v", err)
	}
	if err := clickhouse.CheckCommitOrder(with(1048576, 268435456), conn, clickhouse.CommitAfterWriteSince); err != nil {
		t.Errorf("squashing on %s, which commits after writing: %v", clickhouse.CommitAfterWriteSince, err)
	}
}
